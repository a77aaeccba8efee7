// Types for tests/store/postgres-binary-params.test.ts, which imports the patch script.
export declare const version: string;
export declare const files: string[];
export declare const edits: Record<'connection.js' | 'bytes.js', [string, string][]>;
export declare function patch(pkgDir: string, opts?: { check?: boolean }): string[];
