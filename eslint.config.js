import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const pureLibs = ['libs/audit-log/src/**/*.ts', 'libs/numbering/src/**/*.ts', 'libs/linkage/src/**/*.ts', 'libs/text/src/**/*.ts'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'data/**', '**/*.js', '!eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      // Validators deliberately match control characters to refuse them.
      'no-control-regex': 'off',
      'no-constant-condition': ['error', { checkLoops: 'none' }],
      'no-restricted-syntax': ['error', { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'Read configuration once at boot (HubConfig); no process.env elsewhere.' }],
    },
  },
  {
    // Pure libraries: no framework, no driver, no clock, no randomness (README.md, Layout: the pure libraries).
    files: pureLibs,
    ignores: ['**/*.spec.ts', '**/test/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@nestjs/*', 'better-sqlite3', 'redis', 'kafkajs', '@kurrent/*', 'node:fs', 'node:net', 'node:http', 'fs', 'net', 'http'], message: 'Pure libs import no framework or driver.' },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Pure libs read no clock: pass time in the command.' },
        { object: 'Math', property: 'random', message: 'Pure libs use no randomness: pass ids in the command.' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Pure libs read no clock.' }],
    },
  },
  {
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'bench/**/*.ts', 'load-tests/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', 'no-restricted-syntax': 'off' },
  },
);
