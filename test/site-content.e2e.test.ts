/**
 * What a site folder uploads, through the built CLI, the real Pulumi engine and the embedded sandbox
 * (`--sandbox`): a manifest serving its own folder (`site.dir: "."`) next to a `.env`, keys and the
 * CLI's own `.run402/` (passphrase, state, the sandbox itself) uploads none of them — checked in what
 * the sandbox stored — and the plan then names the files, per Deployment, that a change adds and
 * changes, in the JSON and the terminal summary.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, type Run, runCli } from "~test/cli-harness.js";
import type { Report } from "../cli/report.js";

let tmp: string;

beforeAll(() => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-site-"));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// The shared harness (test/cli-harness.ts), in this file's temp folder.
const cli = (args: string[]) => runCli(tmp, args);

const why = (run: Run) => `exit ${run.code}\n${run.stderr.slice(-4000)}\n${run.stdout.slice(-2000)}`;
const sha = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

function write(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

describe("site content", () => {
  test('behavior: site.dir "." uploads neither .env, keys nor .run402/ (passphrase, state, the sandbox); the plan names the files a change adds and changes', {
    timeout: 300_000,
  }, async () => {
    const app = join(tmp, "app");
    write(app, {
      "app.json": JSON.stringify({
        tier: "prototype",
        project: { name: "dotsite" },
        site: { dir: ".", include_dotfiles: [".well-known/"] },
      }),
      "index.html": "<h1>dotsite</h1>",
      ".well-known/security.txt": "Contact: mailto:security@example.com",
      ".env": "STRIPE_KEY=sk_live_must_not_leak",
      ".env.production": "DB_PASSWORD=must_not_leak_either",
      ".npmrc": "//registry.npmjs.org/:_authToken=npm_must_not_leak",
      id_rsa: "-----BEGIN OPENSSH PRIVATE KEY----- must not leak",
      "tls/server.key": "-----BEGIN PRIVATE KEY----- must not leak",
      ".hidden": "not listed in include_dotfiles",
      "Pulumi.dev.yaml": "config: {}",
    });
    const apply = await cli(["apply", "--manifest", app, "--sandbox", "--yes", "--json"]);
    expect(apply.code, why(apply)).toBe(0);
    expect(apply.stderr).toContain(
      "never uploaded (secrets, tool state): .env, .env.production, .npmrc, Pulumi.dev.yaml, id_rsa, tls/server.key",
    );
    expect(apply.stderr).toContain(
      "dot entries left out (list them in site.include_dotfiles to upload): .hidden",
    );

    // What the sandbox received: every stored blob, and the release it activated.
    const sandboxDir = join(app, ".run402", "sandbox");
    const stored = readdirSync(join(sandboxDir, "content")).filter((name) => /^[0-9a-f]{64}$/.test(name));
    const bytes = stored.map((name) => readFileSync(join(sandboxDir, "content", name)));
    const uploaded = new Set(bytes.map((b) => sha(b)));
    const allowed = ["app.json", "index.html", ".well-known/security.txt"].map((p) =>
      sha(readFileSync(join(app, p))),
    );
    expect([...uploaded].sort()).toEqual([...allowed].sort());
    const secrets = [
      ".env",
      ".env.production",
      ".npmrc",
      "id_rsa",
      "tls/server.key",
      ".hidden",
      "Pulumi.dev.yaml",
      ".run402/passphrase",
      ".run402/sandbox/state.json",
    ].map((p) => readFileSync(join(app, p)));
    for (const secret of secrets) expect(uploaded.has(sha(secret))).toBe(false);
    for (const b of bytes) {
      expect(b.toString()).not.toMatch(/must_not_leak|must not leak/);
      expect(b.toString()).not.toContain(readFileSync(join(app, ".run402/passphrase"), "utf8"));
    }
    const state = JSON.parse(readFileSync(join(sandboxDir, "state.json"), "utf8")) as {
      releases: Record<string, { state: { site: { paths: { path: string }[] } } }>;
    };
    const paths = Object.values(state.releases).flatMap((r) => r.state.site.paths.map((p) => p.path));
    expect(paths.sort()).toEqual([".well-known/security.txt", "app.json", "index.html"]);
    // The CLI keeps its folder out of version control; secret-bearing files are the owner's only.
    expect(readFileSync(join(app, ".run402", ".gitignore"), "utf8")).toMatch(/^\*$/m);
    expect(statSync(join(app, ".run402", "passphrase")).mode & 0o777).toBe(0o600);
    expect(statSync(join(sandboxDir, "state.json")).mode & 0o777).toBe(0o600);

    // A change: the plan names the files per Deployment, in the JSON and in the terminal summary.
    write(app, { "index.html": "<h1>dotsite, changed</h1>", "new.html": "new" });
    const plan = await cli(["plan", "--manifest", app, "--sandbox", "--json"]);
    expect(plan.code, why(plan)).toBe(0);
    // The CLI's own folder now exists inside the site folder, and is left out too.
    expect(plan.stderr).toMatch(/never uploaded \(secrets, tool state\): .*\.run402/);
    const doc = JSON.parse(plan.stdout) as Report;
    const deployment = doc.actions.find((a) => a.resource === "deployment");
    expect(deployment).toMatchObject({
      action: "update",
      amountUsd: "0",
      changes: {
        site: { added: ["new.html"], changed: ["index.html"], removed: [] },
        migrations: { added: [] },
        functions: { added: [], changed: [], removed: [] },
        secrets: { added: [], removed: [] },
      },
    });
    expect(deployment?.reason).toBe(deployment?.changes?.summary);
    const human = await cli(["plan", "--manifest", app, "--sandbox"]);
    expect(human.code, why(human)).toBe(0);
    expect(human.stdout).toContain("files: +1 (new.html), ~1 (index.html)");
  });
});
