// Types for tests/store/postgres-binary-results.test.ts, which imports the patch script.
export declare const version: string;
export declare const files: string[];
export declare const edits: [string, string][];
export declare function patch(pkgDir: string, opts?: { check?: boolean }): string[];
