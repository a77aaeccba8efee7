#!/usr/bin/env node
// `integration …` (the package's bin) and `npm run cli -- …` in this repository.
import { CommanderError } from 'commander';
import { reportError } from './output.ts';
import { buildProgram } from './program.ts';

const { program } = buildProgram(process.env);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander has printed its own message (or the help) already.
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 2;
  else process.exitCode = reportError(err, program.opts<{ json?: boolean }>().json === true);
}
