import { BaseError } from "../../core/errors.js";

/** No usable wallet key was found, or the one found is malformed. Never carries the key. */
export class WalletError extends BaseError {
  override name = "WalletError" as const;
  constructor(options: {
    reason: string;
    code: "WALLET_NOT_FOUND" | "WALLET_INVALID";
    source?: string | undefined;
  }) {
    super(`${options.reason}.`, {
      code: options.code,
      metaMessages: options.source ? [`Source: ${options.source}`] : undefined,
    });
  }
}
/** `WalletError` narrowed by `name`. */
export type WalletErrorType = WalletError & { name: "WalletError" };
