export { BaseError, type BaseErrorOptions } from "../core/errors.js";
export type { ApplyReleaseParameters, ApplyReleaseReturnType, ContentBlob } from "./actions/applyRelease.js";
export type { ReleaseInventory } from "./actions/getActiveRelease.js";
export type { ContentRef, DeploySpec, ReleaseSpec } from "./actions/planRelease.js";
export type { SetTierParameters, SetTierReturnType, TierName } from "./actions/setTier.js";
export { type CreateRun402Options, createRun402, type Run402 } from "./client.js";
export * from "./errors/http.js";
export * from "./errors/payment.js";
export * from "./errors/wallet.js";
export type { Run402Event } from "./internal/events.js";
export { deriveKey } from "./pay/idempotency.js";
export * as Journal from "./pay/journal.js";
export type { Recovered, Unfinished } from "./pay/payer.js";
export type { SpendPolicy } from "./pay/policy.js";
export * as Policy from "./pay/policy.js";
export type {
  ChainState,
  Credential,
  Offers,
  PaymentChallenge,
  Proof,
  Rail,
  RailName,
  Transfer,
} from "./pay/rail.js";
export type { Settlement } from "./Receipt.js";
export * as Receipt from "./Receipt.js";
export * as Siwx from "./Siwx.js";
export {
  configDir,
  type ResolveWalletOptions,
  resolveWallet,
  type Wallet,
  type WalletSource,
} from "./wallet.js";
