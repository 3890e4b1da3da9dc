/** The Node.js versions tested besides the machine's own (scripts/node-versions.mjs installs them). */
export declare const testedNodeVersions: string[];
/** The node executable of `version` under `<base>/.tools/node` (base: this repository). */
export declare function nodeBinary(version: string, base?: string): string;
