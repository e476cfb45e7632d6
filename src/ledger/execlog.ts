/** Full output of a remote_exec call whose tails were cut: kept, redacted, in a local 0600 file under RGT_HOME/exec/. */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { redactText } from "../guard/redact.js";
import type { Ledger } from "./store.js";

/** Write the redacted command, stdout and stderr; returns the file's path, or undefined when it could not be written. */
export function saveExecOutput(ledger: Ledger, command: string, stdout: string, stderr: string,
  fingerprints?: Parameters<typeof redactText>[1]): string | undefined {
  try {
    const dir = path.join(ledger.dir, "exec");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(3).toString("hex")}.log`);
    fs.writeFileSync(file, redactText(`$ ${command}\n--- stdout\n${stdout}\n--- stderr\n${stderr}\n`, fingerprints), { mode: 0o600 });
    return file;
  } catch {
    return undefined;
  }
}
