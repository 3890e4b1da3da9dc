/**
 * Errors that name the way out: an error raised below the provider (the SDK, Run402's API) speaks of
 * options and routes a Pulumi user never types. Before it leaves the provider, the ones whose fix is a
 * setting or a line of the program are restated with that setting (`run402:apiBase`,
 * `run402:privateKey`, as provider/settings.ts `howToSet` writes them) or that line; their code stays.
 */
import { BaseError } from "../../core/errors.js";
import { howToSet, settingOf } from "../settings.js";
import { configured } from "./context.js";

/** The innermost cause's message (`connect ECONNREFUSED 127.0.0.1:9`), else the error's own. */
function rootCause(error: unknown): string {
  let at: unknown = error;
  let text = "";
  for (let depth = 0; at && typeof at === "object" && depth < 8; depth++) {
    const message = (at as { message?: unknown }).message;
    if (typeof message === "string" && message !== "") text = message.split("\n")[0] ?? message;
    at = (at as { cause?: unknown }).cause;
  }
  return text;
}

/** Run402's codes for "this wallet holds no active tier" (the sandbox's, Run402's). */
const noTier = new Set(["TIER_REQUIRED", "NO_ACTIVE_TIER"]);

/** `POST /projects/v1`: the request an API error answered. */
function request(error: BaseError): string {
  const { method, url } = error as BaseError & { method?: string; url?: string };
  if (typeof url !== "string") return "the request";
  try {
    return `${method ?? ""} ${new URL(url).pathname}`.trim();
  } catch {
    return "the request";
  }
}

/** `error` restated with the setting or program line that fixes it; else `error` itself. */
export function wayOut(error: unknown): unknown {
  if (!(error instanceof BaseError)) return error;
  if (error.code === "HTTP_REQUEST_FAILED") {
    const { method, url } = error as BaseError & { method?: string; url?: string };
    const apiBase = configured()?.apiBase ?? "https://api.run402.com";
    if (typeof url !== "string" || !url.startsWith(apiBase)) return error;
    const path = url.slice(apiBase.length) || "/";
    return new BaseError(
      `The Run402 API at ${apiBase} did not answer (${method ?? "GET"} ${path}: ${rootCause(error)}). Check run402:apiBase: ${howToSet("apiBase", "<url>")}, or --sandbox with run402-pulumi; a local sandbox must be running (npx run402-sandbox prints its apiBase).`,
      { code: error.code, details: "", cause: error },
    );
  }
  if (error.code === "WALLET_NOT_FOUND") {
    return new BaseError(
      `No wallet key to pay and sign with. Set one: ${howToSet("privateKey")}; or create the run402 allowance file (${error.shortMessage.replace(/^.*create /, "").replace(/\.$/, "")}).`,
      { code: error.code, details: "", cause: error },
    );
  }
  if (noTier.has(String(error.code))) {
    return new BaseError(
      `The wallet's organization holds no active Run402 tier, so Run402 refused ${request(error)} (${error.code}). In a Pulumi program, declare a Tier and make the resource wait for it: \`const tier = new Tier("tier", { tier: "prototype" })\` and \`{ dependsOn: [tier] }\` in the resource's options; with run402-pulumi, give the manifest a \`tier\` block.`,
      { code: error.code, status: error.status, details: "", cause: error },
    );
  }
  const key = settingOf(String(error.code));
  // allowedActions is also what `run402-pulumi renew` narrows for its run: its refusal says so itself.
  if (key && key !== "allowedActions" && !error.message.includes(`config set run402:${key}`)) {
    return new BaseError(
      `${error.shortMessage} The operator's setting run402:${key} decides this; to change it: ${howToSet(key)}.`,
      {
        code: error.code,
        status: error.status,
        metaMessages: error.metaMessages,
        details: error.details ?? "",
        cause: error,
      },
    );
  }
  return error;
}
