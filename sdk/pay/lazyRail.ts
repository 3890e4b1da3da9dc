/**
 * A rail whose payment library loads on first use. @x402/* and mppx take most of a process's start-up
 * (about a second each on a small machine), and most runs pay nothing, or pay on one rail: the client
 * builds its rails with this, and the payer readies only the rails it may pay on when a 402 arrives.
 * The rail itself (its parsing, policy checks and signing guards) is the loaded module, unchanged.
 */
import type { Rail, RailName } from "./rail.js";

/** A {@link Rail} that loads itself; {@link Rail.ready} must resolve before `getChallenges`. */
export function lazyRail(name: RailName, load: () => Promise<Rail>): Rail {
  let loaded: Rail | undefined;
  let loading: Promise<Rail> | undefined;
  const get = (): Promise<Rail> => {
    loading ??= load().then(
      (rail) => {
        if (rail.name !== name) throw new Error(`lazyRail: loaded the ${rail.name} rail for ${name}`);
        loaded = rail;
        return rail;
      },
      (error: unknown) => {
        loading = undefined;
        throw error;
      },
    );
    return loading;
  };
  return {
    name,
    async ready() {
      await get();
    },
    getChallenges(response, body) {
      // A programming error, not a 402 to refuse: the payer readies a rail before reading its offers.
      if (!loaded) throw new Error(`The ${name} rail was read before it was loaded (call ready() first).`);
      return loaded.getChallenges(response, body);
    },
    createCredential: async (challenge) => (await get()).createCredential(challenge),
    chainState: async (proof) => (await get()).chainState(proof),
    configuredNetwork: async () => (await (await get()).configuredNetwork?.()) ?? null,
    // Only a loaded rail can say whether it cancels; the payer asks after chainState() loaded it.
    get cancel() {
      const rail = loaded;
      return rail?.cancel
        ? (proof: Parameters<NonNullable<Rail["cancel"]>>[0]) => rail.cancel!(proof)
        : undefined;
    },
  };
}
