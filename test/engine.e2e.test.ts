import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  createEngineWorkspace,
  type EngineWorkspace,
  inlineStack,
  pulumiCli,
  repoRoot,
} from "~test/engine.js";

const fixture = join(repoRoot, "test", "fixtures", "file-resource");
const fileProvider: pulumi.dynamic.ResourceProvider = createRequire(import.meta.url)(
  join(fixture, "provider.cjs"),
);

/** The fixture's file, as a resource of this program. */
class File extends pulumi.dynamic.Resource {
  declare readonly size: pulumi.Output<number>;
  constructor(name: string, args: { path: string; content: string }) {
    super(fileProvider, name, { ...args, size: undefined }, {}, "test", "File");
  }
}

let engine: EngineWorkspace;
beforeAll(async () => {
  engine = await createEngineWorkspace();
  // Printed so that every test run shows which engine it exercised.
  console.log(`pulumi engine ${engine.version} (${engine.pulumiCommand.command})`);
});
afterAll(() => engine?.cleanup());

describe("engine", () => {
  test("behavior: the real CLI is installed", () => {
    expect(engine.version).toMatch(/^v3\.\d+\.\d+$/);
  });

  test("behavior: CLI in a project folder: up, preview, refresh sees drift, destroy", {
    timeout: 300_000,
  }, async () => {
    const project = mkdtempSync(join(engine.dir, "project-"));
    cpSync(fixture, project, { recursive: true });
    symlinkSync(join(repoRoot, "node_modules"), join(project, "node_modules"));
    const target = join(engine.dir, "cli-note.txt");
    const cli = (...args: string[]) => pulumiCli(engine, args, { cwd: project });

    expect((await cli("stack", "init", "dev")).code).toBe(0);
    await cli("config", "set", "path", target);
    await cli("config", "set", "content", "hello");

    const up = await cli("up", "--yes", "--skip-preview");
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(readFileSync(target, "utf8")).toBe("hello");

    const preview = await cli("preview", "--expect-no-changes");
    expect(preview.code, preview.stderr + preview.stdout).toBe(0);

    await cli("config", "set", "content", "hello again");
    const changed = await cli("preview", "--json");
    expect(JSON.parse(changed.stdout).changeSummary).toMatchObject({ update: 1 });
    expect(readFileSync(target, "utf8")).toBe("hello"); // preview changed nothing

    rmSync(target);
    const refresh = await cli("refresh", "--yes");
    expect(refresh.code, refresh.stderr + refresh.stdout).toBe(0);
    const up2 = await cli("up", "--yes", "--skip-preview");
    expect(up2.code, up2.stderr + up2.stdout).toBe(0);
    expect(readFileSync(target, "utf8")).toBe("hello again"); // recreated after drift

    const destroy = await cli("destroy", "--yes");
    expect(destroy.code, destroy.stderr + destroy.stdout).toBe(0);
    expect(existsSync(target)).toBe(false);
  });

  test("behavior: Automation API inline program: up, preview, refresh sees drift, destroy", async () => {
    const target = join(engine.dir, "inline-note.txt");
    let content = "one";
    const stack = await inlineStack(engine, {
      projectName: "inline-file",
      program: async () => {
        const file = new File("note", { path: target, content });
        return { size: file.size };
      },
    });

    const up = await stack.up();
    expect(up.summary.resourceChanges).toMatchObject({ create: 2 });
    expect(up.outputs.size?.value).toBe(3);
    expect(readFileSync(target, "utf8")).toBe("one");

    const same = await stack.preview();
    expect(same.changeSummary).toEqual({ same: 2 });

    rmSync(target);
    const refreshed = await stack.refresh();
    expect(refreshed.summary.resourceChanges).toMatchObject({ delete: 1 });

    content = "three";
    const up2 = await stack.up();
    expect(up2.summary.resourceChanges).toMatchObject({ create: 1 });
    expect(readFileSync(target, "utf8")).toBe("three");

    const destroyed = await stack.destroy();
    expect(destroyed.summary.resourceChanges).toMatchObject({ delete: 2 });
    expect(existsSync(target)).toBe(false);
  });
});
