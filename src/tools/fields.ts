/** Zod field builders shared by the tools' input schemas: every string bounded to what it means. */
import * as z from "zod";

export const HOST_MAX = 255;
export const PATH_MAX = 4096;
export const NAME_MAX = 128;

const oneLine = (s: string) => !/[\0\n\r]/.test(s);

/** ssh alias (resolved like `ssh -G`) or user@host[:port]: one line, bounded. */
export const hostText = () => z.string().min(1).max(HOST_MAX).refine(oneLine, "host must be one line");

/** One local or remote path: non-empty, bounded, no newline or NUL (they would split a command or a list). */
export const pathText = (field: string) =>
  z.string().min(1).max(PATH_MAX).refine(oneLine, `${field} must be one path without newlines or NUL`);

/** A short identifier (run id, profile name, cell name, action verb). */
export const nameText = (max = NAME_MAX) => z.string().min(1).max(max).refine(oneLine, "must be one line");
