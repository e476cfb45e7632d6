/** rgt status — placeholder until its owner lands it. */
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write("rgt status: not implemented yet\n");
  return 2;
}
