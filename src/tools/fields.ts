/** Zod field builders shared by the tools' input schemas. */
import * as z from "zod";

/** One local or remote path: non-empty, bounded, no newline or NUL (they would split a command or a list). */
export const pathText = (field: string) =>
  z.string().min(1).max(4096).refine((s) => !/[\0\n\r]/.test(s), `${field} must be one path without newlines or NUL`);
