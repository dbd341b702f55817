// @ts-check
// ESLint 9 flat config: typescript-eslint's type-checked rules for src/ and test/, ESLint's JS rules for
// the plain-JS entry points, benchmark and scripts (bin/, bench/, scripts/). Formatting is prettier's
// (`prettier --check .`), so eslint-config-prettier turns off every stylistic rule that would fight it;
// max-len stays on for what prettier does not wrap: comments, strings and template literals.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** @type {import('eslint').Linter.RuleEntry} */
const maxLen = ['error', { code: 120, tabWidth: 2, ignoreUrls: true, ignoreRegExpLiterals: true }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**', 'data/**'] },
  {
    files: ['**/*.ts'],
    extends: [
      js.configs.recommended,
      ...tseslint.configs.recommendedTypeChecked,
      ...tseslint.configs.stylisticTypeChecked,
    ],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node }, sourceType: 'module', ecmaVersion: 2022 },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }] },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' } },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // The store interface is promise-based: an `async` method without `await` still turns a throw (a store
      // that is not open) into a rejection, as callers expect.
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-empty-function': 'off' } },
  prettier,
  { rules: { 'max-len': maxLen } },
);
