// Types for tests/store/postgres-queue.test.ts, which imports the patch script.
export declare const version: string;
export declare const files: string[];
export declare function original(file: string): string;
export declare function patched(file: string): string;
export declare function patch(pkgDir: string, opts?: { check?: boolean }): string[];
