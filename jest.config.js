/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  setupFiles: ['<rootDir>/test/setup.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  // Each file starts its own PGlite or Postgres database and S3 server, and much of a fault test's time is waiting
  // (for a timeout, a stalled store, a process to start). Three workers on a 2-core machine: the PGlite pass took
  // 154 s with two, 123 s with three and 110 s with four; with a busy loop taking one of the two cores, 175 s with
  // two and 136-143 s with three, and no failures in any run. Three, not four, leaves room for a slower machine.
  maxWorkers: 3,
  testTimeout: 30000,
};
