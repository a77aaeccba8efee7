// Types for tests/store/postgres-nextwrite.test.ts, which imports the patch script.
export declare const version: string;
export declare const files: string[];
export declare const original: string;
export declare const patched: string;
export declare function patch(pkgDir: string, opts?: { check?: boolean }): string[];
