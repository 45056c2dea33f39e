import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
const alias = {
  'switchyard-bus/testing': fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)),
  'switchyard-bus/postgres': fileURLToPath(new URL('./src/postgres/index.ts', import.meta.url)),
  'switchyard-bus/pglite': fileURLToPath(new URL('./src/pglite/index.ts', import.meta.url)),
  'switchyard-bus/mysql': fileURLToPath(new URL('./src/mysql/index.ts', import.meta.url)),
  'switchyard-bus/rabbitmq': fileURLToPath(new URL('./src/rabbitmq/index.ts', import.meta.url)),
  'switchyard-bus': fileURLToPath(new URL('./src/index.ts', import.meta.url)),
}

export default defineConfig({
  resolve: { alias },
  test: {
    allowOnly: !ci,
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: [
            'src/**/*.test.ts',
            'test/unit/**/*.test.ts',
            'examples/**/*.test.ts',
            'docs/**/*.test.ts',
          ],
          typecheck: {
            enabled: true,
            include: ['src/**/*.test-d.ts', 'test/**/*.test-d.ts'],
            tsconfig: './tsconfig.json',
          },
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: [
            'test/integration/**/*.int.test.ts',
            'test/conformance/**/*.conformance.test.ts',
          ],
          globalSetup: ['./test/helpers/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
})
