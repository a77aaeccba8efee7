// Lint and format rules, run by `npm test` (npm run lint). typescript-eslint's recommended rules
// without type information (a full typed lint of 40k lines costs ~1 min here; tsc already checks
// types), ESLint Stylistic as the one formatter (its rules are set to the style the code is written
// in, so `eslint --fix` formats without churn), and the project's own rules: Telegram's error codes
// live in its adapter, never in the core (ARCHITECTURE.md, "One platform interface"); transactions go
// through src/store/transaction.ts, never postgres.js's sql.begin.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

const tgCode = /\bTG_[A-Z0-9_]+/.source;

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'src/console/dist/**', 'data/**', 'coverage/**', 'clients/typescript/dist/**', 'clients/typescript/src/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: true, jsx: false, braceStyle: '1tbs', arrowParens: true, commaDangle: 'always-multiline' }),
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
    rules: {
      // The house style: dense lines where they read better (`if (x) return y;` beside its setup,
      // short getters side by side, long lists wrapped where they fit), operators where they read.
      '@stylistic/list-style': 'off',
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/multiline-ternary': 'off',
      '@stylistic/operator-linebreak': 'off',
      '@stylistic/lines-between-class-members': 'off',
      '@stylistic/no-mixed-operators': 'off',
      '@stylistic/quote-props': ['error', 'as-needed'],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      // The core reads error categories; a TG_ code outside the Telegram adapter is a leak of its shape.
      'no-restricted-syntax': ['error',
        { selector: `Literal[value=/${tgCode}/]`, message: 'Telegram error codes belong to src/platforms/telegram/ (the core reads error categories)' },
        { selector: `TemplateElement[value.raw=/${tgCode}/]`, message: 'Telegram error codes belong to src/platforms/telegram/ (the core reads error categories)' },
        // postgres.js 3.4.9's sql.begin can write BEGIN on a pooled connection when the pipeline is full
        // (porsager/postgres#1189): UNSAFE_TRANSACTION, or other queries inside the open transaction.
        { selector: "CallExpression[callee.property.name='begin']", message: 'use transaction() from src/store/transaction.ts: sql.begin can run BEGIN on a pooled connection (porsager/postgres#1189)' },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
  // Where Telegram's codes are at home: its adapter, the console's sentences for them, the client of
  // the public API (whose error codes they are), the tests.
  { files: ['src/platforms/telegram/**', 'src/console/**', 'clients/**', 'tests/**'], rules: { 'no-restricted-syntax': 'off' } },
);
