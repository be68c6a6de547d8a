/** Entry point of the `conduct` command. Returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  console.error(`conduct: not built yet (${argv.slice(2).join(' ')})`);
  return 1;
}
