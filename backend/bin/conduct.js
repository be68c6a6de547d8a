#!/usr/bin/env node
// Runner for the `conduct` command: the compiled entry point lives in dist/ (built by `npm install`).
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => {
    console.error(`conduct: ${err && err.message ? err.message : err}`);
    process.exitCode = 1;
  },
);
