// The imperative path the bench compares run402-pulumi with: Run402's own client, `@run402/sdk`
// 3.3.3 from npm, doing what `run402-pulumi apply` does for the quickstart app, as a user's script
// would: buy the tier (x402, paid by the SDK's own fetch), provision a project, apply a release of
// the same migration and the same site files. Run as its own process (`node bench/imperative.mjs
// <app dir>`), with the wallet in $RUN402_CONFIG_DIR/allowance.json and $RUN402_API_BASE set.
// Prints one JSON line: the project and the release.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { run402 } from "@run402/sdk/node";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node bench/imperative.mjs <app dir>");
const app = JSON.parse(readFileSync(join(dir, "app.json"), "utf8"));
const siteDir = join(dir, app.site.dir);
const site = {};
for (const name of readdirSync(siteDir).sort()) site[name] = readFileSync(join(siteDir, name), "utf8");

const r = run402();
await r.tier.set(app.tier);
const project = await r.projects.provision({ name: app.project.name });
const scoped = await r.project(project.project_id);
const release = await scoped.apply(
  {
    project: project.project_id,
    database: { migrations: app.database.migrations.map((m) => ({ id: m.id, sql: m.sql })) },
    site: { replace: site },
  },
  { maxRetries: 0 },
);
process.stdout.write(`${JSON.stringify({ projectId: project.project_id, releaseId: release.release_id })}\n`);
