import { BaseError } from "../core/errors.js";

/** One problem in a manifest, located by a JSON pointer (`""` is the whole document). */
export type ManifestIssue = {
  /** RFC 6901 JSON pointer into the manifest, e.g. `/site/files/0/path`. */
  pointer: string;
  /** What is wrong, as a sentence. */
  message: string;
  /** How to fix it, when there is a likely fix (e.g. "Did you mean `site`?"). */
  hint?: string;
};

/** Renders an issue as one line: `<pointer>: <message> <hint>`. */
export function formatIssue(issue: ManifestIssue): string {
  const where = issue.pointer === "" ? "(root)" : issue.pointer;
  return `${where}: ${issue.message}${issue.hint ? ` ${issue.hint}` : ""}`;
}

/** A manifest (app.json / app.yaml) is invalid; `issues` lists every problem found, each with its JSON pointer. */
export class ManifestValidationError extends BaseError {
  override name = "ManifestValidationError" as const;
  readonly issues: ManifestIssue[];
  readonly file: string | undefined;

  constructor(options: { issues: ManifestIssue[]; file?: string | undefined; cause?: unknown }) {
    const { issues, file } = options;
    const what = file ?? "The manifest";
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(`${what} is not a valid manifest (${count}).`, {
      code: "MANIFEST_INVALID",
      metaMessages: issues.map(formatIssue),
      cause: options.cause,
    });
    this.issues = issues;
    this.file = file;
  }
}
export type ManifestValidationErrorType = ManifestValidationError & { name: "ManifestValidationError" };
