// ESLint flat config: typescript-eslint type-checked rules plus the package boundaries of STYLE.md §1.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import tseslint from 'typescript-eslint'

const drivers = [
  'pg',
  'pg-*',
  '@electric-sql/*',
  'mysql2',
  'mysql2/*',
  'amqplib',
  '@nats-io/*',
  'nats',
  'ioredis',
  'kafkajs',
]

/** The core, outbox, transport, sql and testing folders never import a driver or an adapter. */
const coreBoundary = {
  patterns: [
    { group: drivers, message: 'Drivers are imported only inside their own adapter folder.' },
    {
      group: [
        '**/postgres/**',
        '**/pglite/**',
        '**/mysql/**',
        '**/rabbitmq/**',
        '**/nats/**',
        '**/redis/**',
        '**/kafka/**',
      ],
      message: 'The core never imports an adapter.',
    },
  ],
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // Re-rejecting a caught value is fine; creating a rejection from a non-Error is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: [
      'src/{postgres,pglite,mysql,rabbitmq,nats,redis,kafka}/**',
      '**/*.test.ts',
      '**/*.test-d.ts',
    ],
    rules: { 'no-restricted-imports': ['error', coreBoundary] },
  },
  {
    files: ['src/core/**/*.ts', 'src/errors.ts', 'src/index.ts'],
    ignores: ['**/*.test.ts', '**/*.test-d.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...coreBoundary.patterns,
            {
              group: ['**/testing/**', '**/cli/**'],
              message: 'The core never imports testing or CLI code.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.test.ts', '**/*.test-d.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  prettier,
)
