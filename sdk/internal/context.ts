import type { Payer } from "../pay/payer.js";
import type { Transport } from "./http.js";

/** What every action receives: the transport and the payer. */
export type ActionContext = { transport: Transport; payer: Payer };
