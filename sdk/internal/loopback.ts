/** Loopback detection, without dependencies (the client loads it on every command). */

/**
 * Whether a URL names this machine (loopback): an API there is a local Run402 (a sandbox), whose
 * chains are local too, so no public RPC can serve them.
 */
export function onLoopback(url: string | URL): boolean {
  try {
    const host = new URL(url).hostname
      .replace(/^\[|\]$/g, "")
      .replace(/\.$/, "")
      .toLowerCase();
    return (
      host === "localhost" ||
      host.endsWith(".localhost") ||
      /^127\./.test(host) ||
      // This machine by any address: unspecified (0.0.0.0, ::), IPv6 loopback, IPv4-mapped loopback.
      host === "0.0.0.0" ||
      host === "::" ||
      host === "::1" ||
      /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(host)
    );
  } catch {
    return false;
  }
}
