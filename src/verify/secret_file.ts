/** Reading one local credential file for push_secret: a regular file, at most maxBytes, refused (BAD_INPUT) otherwise. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RefusalError, refuse } from "../common/result.js";

export function readCredentialFile(file: string, maxBytes: number): Buffer {
  const f = file.startsWith("~/") ? path.join(os.homedir(), file.slice(2)) : path.resolve(file);
  try {
    const st = fs.statSync(f);
    if (!st.isFile()) refuse("BAD_INPUT", `source.file: ${file} is not a regular file`, "Name the credential file itself.");
    if (st.size > maxBytes) refuse("BAD_INPUT", `source.file: ${file} is over ${Math.round(maxBytes / 1024 / 1024)} MiB; that is not a credential`, "Push data with push_code.");
    return fs.readFileSync(f);
  } catch (e) {
    if (e instanceof RefusalError) throw e;
    return refuse("BAD_INPUT", `source.file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "error"})`, "Check the path and its permissions on the machine running the server.");
  }
}
