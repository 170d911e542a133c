// Replaced at bundle time with package.json's version (esbuild define).
declare const IMPRINT_VERSION: string | undefined;
export const VERSION: string = typeof IMPRINT_VERSION === 'string' ? IMPRINT_VERSION : '0.0.0-dev';
