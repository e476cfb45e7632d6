/**
 * push_secret — one credential onto a box without it ever appearing in a command line, a log, an error
 * or a result. The value is read here (the server's own environment, or one block of a local file) and
 * streamed on stdin right after scripts/secret_write.sh, which writes it under umask 077 to a temp name
 * and renames it into place (0600). Destinations on a shared or durable mount of the host's profile are
 * refused first (scripts/secret_where.sh resolves where the file would land). Logic: src/secret/push.ts.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse, warning, type Warning } from "../common/result.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { recordSecretFingerprints } from "../ledger/fingerprints.js";
import { readSecret, resolveDestination, writeSecret } from "../secret/push.js";
import { hostText, pathText } from "./fields.js";

export { extractBlock, forbiddenCredentialRoots, isUnder } from "../secret/push.js";

export const pushSecret = defineTool({
  name: "push_secret",
  title: "Put one credential on a box (stdin → 0600 file)",
  description:
    "Put one credential (server env var or local file) into a 0600 file on the box via stdin; it never shows in a command, log or result.",
  input: {
    host: hostText(),
    // one object with exactly one of env / file (not a union: plain types publish smaller and travel better)
    source: z.strictObject({
      env: z.string().max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "source.env must be an environment variable name").optional(),
      file: pathText("source.file").optional(),
      block: z.string().min(1).max(512).optional(),
    }).refine((v) => (v.env === undefined) !== (v.file === undefined) && (v.block === undefined || v.file !== undefined), "give source.env, or source.file (with an optional block)")
      .describe("{env: NAME} or {file, block?}"),
    remote_path: pathText("remote_path"),
  },
  output: {
    remote_path: z.string().optional(),
    bytes: z.number().optional(),
    profile: z.string().optional(),
  },
  // destroy: it replaces the file at remote_path, though it deletes nothing else
  effect: "destroy",
  idempotent: true,
  async handler(args, ctx) {
    const warnings: Warning[] = [];
    const rp = args.remote_path;
    if (/[\0\n\r]/.test(rp)) refuse("BAD_INPUT", "remote_path: must be one path without newlines or NUL", "Pass a single file path.");
    if (rp.endsWith("/") || rp === "~") refuse("BAD_INPUT", "remote_path: names a directory; it must name the file to write", "e.g. ~/.netrc or /root/.wandb_key");

    // 1. the value, read here; it never enters a string that leaves this process except stdin
    const src = args.source as { env?: string; file?: string; block?: string };
    const value = readSecret(src);

    // 2. where would it land, and is that a shared/durable mount? (one round trip, no secret in it)
    const info = hostInfo(ctx.ledger, args.host);
    const dest = await resolveDestination(ctx.remote, args.host, info, rp);
    if (dest.forbiddenRoot) {
      const home = dest.profile?.cred_file ? ` such as ${dest.profile.cred_file}` : " under the home directory on the instance's own disk (e.g. ~/.netrc)";
      refuse(
        "SECRET_ON_SHARED_MOUNT",
        `remote_path ${rp} resolves to ${dest.target}, on ${dest.forbiddenRoot}, which the ${dest.profileName} profile marks shared/durable (other instances or the platform keep it). Nothing was sent.`,
        `Write the credential to the per-instance disk${home}.`,
        { profile: dest.profileName },
      );
    }

    // 3. the write: value only on stdin; temp file + rename so a reader never sees half a credential
    const written = await writeSecret(ctx.remote, args.host, dest.target, value);
    // exact-match redaction of this credential from now on (salted fingerprints, never the value)
    recordSecretFingerprints(ctx.ledger, value);
    if (written !== value.length) {
      refuse("INTERNAL", `wrote ${written} bytes to ${dest.target} but sent ${value.length}`, "Call push_secret again; the file is replaced atomically.");
    }
    const cred = dest.profile?.cred_file;
    if (cred && dest.target !== cred && src.env && /WANDB/i.test(src.env)) {
      warnings.push(warning("CRED_FILE", "info", `The ${dest.profileName} profile keeps credentials at ${cred}.`, `rgt://profiles/${dest.profileName}`));
    }
    return { ok: true, remote_path: dest.target, bytes: value.length, profile: dest.profileName, warnings };
  },
});
