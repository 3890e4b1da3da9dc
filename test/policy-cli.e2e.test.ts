/**
 * The CLI with a policy pack (`--policy-pack`, `--policy-pack-config`): the built run402-pulumi
 * (dist/cli/main.js) passes the pack to the engine; `plan --json` lists the violations with their
 * policy names; a mandatory one stops plan and apply with POLICY_PACK_VIOLATION (exit 3), nothing paid.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  appCopy,
  assertBuilt,
  type Run,
  report,
  runCli,
  sandboxSettings,
  settingFlags,
  why,
} from "~test/cli-harness.js";
import { repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

const pack = join(repoRoot, "packages", "policy");
let sandbox: TestSandbox;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-policy-cli-"));
  sandbox = await startTestSandbox({ walletCount: 3 });
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The CLI as wallet `wallet` against the sandbox (flags for this run only). */
function cli(args: string[], wallet: number): Promise<Run> {
  const flags = [
    ...settingFlags({ ...sandboxSettings(sandbox), journalPath: join(tmp, `journal-${wallet}.json`) }),
    "--json",
  ];
  return runCli(tmp, [...args, ...flags], { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey });
}

function packConfig(config: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmp, "pack-")), "policy.json");
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const doc = report;

describe("run402-pulumi --policy-pack", () => {
  test("behavior: a mandatory violation stops plan and apply (exit 3, POLICY_PACK_VIOLATION), nothing paid", async () => {
    const manifest = appCopy(tmp);
    const config = packConfig({ "run402-payment-ceiling": { maxUsd: 0.05 } });
    const policy = ["--policy-pack", pack, "--policy-pack-config", config];
    const before = (await sandbox.ledger()).length;

    const plan = await cli(["plan", "--manifest", manifest, ...policy], 0);
    expect(plan.code, why(plan)).toBe(3);
    const planned = doc(plan);
    expect(planned.violations).toEqual([
      expect.objectContaining({
        policy: "run402-payment-ceiling",
        pack: "run402",
        level: "mandatory",
        resource: "tier",
      }),
    ]);
    expect(planned.violations![0]!.message).toContain("plans to pay $0.10");
    expect(planned.errors.map((e) => e.code)).toEqual(["POLICY_PACK_VIOLATION"]);
    expect(planned.errors[0]!.message).toContain("run402-payment-ceiling");

    const apply = await cli(["apply", "--yes", "--manifest", manifest, ...policy], 0);
    expect(apply.code, why(apply)).toBe(3);
    expect(doc(apply).errors[0]!.code).toBe("POLICY_PACK_VIOLATION");
    expect(doc(apply).payments).toEqual([]);
    expect((await sandbox.ledger()).length).toBe(before);
  });

  test("behavior: an advisory violation is reported and plan succeeds; no pack, no violations key", async () => {
    const manifest = appCopy(tmp);
    const config = packConfig({ "run402-payment-ceiling": { enforcementLevel: "advisory", maxUsd: 0.05 } });
    const plan = await cli(
      ["plan", "--manifest", manifest, "--policy-pack", pack, "--policy-pack-config", config],
      1,
    );
    expect(plan.code, why(plan)).toBe(0);
    expect(doc(plan).violations).toEqual([
      expect.objectContaining({ policy: "run402-payment-ceiling", level: "advisory" }),
    ]);
    const clean = await cli(["plan", "--manifest", manifest, "--policy-pack", pack], 1);
    expect(clean.code, why(clean)).toBe(0);
    expect(doc(clean).violations).toEqual([]);
    const none = await cli(["plan", "--manifest", manifest], 1);
    expect(doc(none)).not.toHaveProperty("violations");
  });

  test("error: a folder without PulumiPolicy.yaml is refused before the engine starts (exit 2)", async () => {
    const run = await cli(["plan", "--manifest", appCopy(tmp), "--policy-pack", tmp], 0);
    expect(run.code, why(run)).toBe(2);
    expect(doc(run).errors[0]!.code).toBe("CLI_POLICY_PACK_NOT_FOUND");
  });
});
