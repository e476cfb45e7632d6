/** rgt approve — placeholder until its owner lands it. */
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write("rgt approve: not implemented yet\n");
  return 2;
}
