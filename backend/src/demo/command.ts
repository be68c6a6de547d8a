import { Option, type Command } from 'commander';
import { createLogger } from '../log/index.js';
import { DEFAULT_LEARNING_MINUTES, runDemo } from './demo.js';

export interface DemoFlags {
  keep?: boolean;
  ci?: boolean;
  api?: string;
  minutes?: string;
  scenario?: string[];
}

export interface DemoCommandDeps {
  exit: { ok: number; failure: number; usage: number };
}

/** Runs `conduct demo`; resolves with the exit code. Output goes to stdout, failures to stderr. */
export async function runDemoCommand(flags: DemoFlags, deps: DemoCommandDeps): Promise<number> {
  const minutes = flags.minutes === undefined ? DEFAULT_LEARNING_MINUTES : Number(flags.minutes);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 120) {
    console.error('conduct demo: --minutes must be a whole number from 1 to 120');
    return deps.exit.usage;
  }
  const tty = process.stdout.isTTY === true;
  let progressShown = false;
  const print = (line: string) => {
    if (progressShown) process.stdout.write('\n');
    progressShown = false;
    console.log(line);
  };
  const progress = (line: string) => {
    if (!tty) return print(line);
    process.stdout.write(`\r${line}\u001b[K`);
    progressShown = true;
  };
  const started = Date.now();
  let result;
  try {
    result = await runDemo({
      learningMinutes: minutes,
      ...(flags.api ? { apiEndpoint: flags.api } : {}),
      ...(flags.scenario?.length ? { scenarios: flags.scenario } : {}),
      print,
      progress,
      logger: createLogger({ level: 'error' }),
    });
  } catch (err) {
    print('');
    console.error(`conduct demo: ${(err as Error).message}`);
    return deps.exit.failure;
  }
  print(`demo finished in ${Math.round((Date.now() - started) / 1000)} s: ${result.passed ? 'every scenario behaved as expected' : 'some scenarios did not behave as expected'}`);
  const code = flags.ci && !result.passed ? deps.exit.failure : deps.exit.ok;
  if (!flags.keep) {
    await result.stop();
    return code;
  }
  print(`--keep: conduct and the services keep running; open ${result.uiUrl} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await result.stop();
  return code;
}

/** Adds `demo` to the CLI; `setAction` receives the running command's exit code. */
export function registerDemoCommand(program: Command, deps: DemoCommandDeps, setAction: (p: Promise<number>) => void): void {
  program
    .command('demo')
    .description('start conduct and example services, learn normal traffic, then run misconduct scenarios and print their alerts')
    .addOption(new Option('--keep', 'leave conduct and the services running after the scenarios (for the UI)'))
    .addOption(new Option('--ci', 'exit 1 when a scenario did not raise its alert, or the legitimate burst raised one of medium or above'))
    .addOption(new Option('--api <host:port>', 'API and UI address (default: a free port on 127.0.0.1)'))
    .addOption(new Option('--minutes <n>', `normal minutes replayed before the scenarios (default ${DEFAULT_LEARNING_MINUTES})`))
    .addOption(new Option('--scenario <name...>', 'run only these scenarios'))
    .action((flags: DemoFlags) => {
      setAction(runDemoCommand(flags, deps));
    });
}
