/** Loopback detection, without dependencies (the client loads it on every command). */

/**
 * Whether a URL names this machine (loopback): an API there is a local Run402 (a sandbox), whose
 * chains are local too, so no public RPC can serve them.
 */
export function onLoopback(url: string | URL): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\./.test(host);
  } catch {
    return false;
  }
}
