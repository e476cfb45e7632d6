/**
 * The server and an SDK client in one process (InMemoryTransport), used the way real clients use it:
 * listTools() first, so the client validates every structuredContent against the tool's outputSchema,
 * then callTool. Each result is also checked against a CLOSED copy of the output schema, so a field a
 * tool returns without declaring it fails the test. Shared checks: metadata and bad arguments.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Ajv } from "ajv";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { Tool as McpTool } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createServer, type CreatedServer } from "../../src/server/createServer.js";
import { outputJsonSchema } from "../../src/server/schemas.js";
import { allTools } from "../../src/tools/index.js";
import { Ledger } from "../../src/ledger/store.js";
import { SshRemote } from "../../src/remote/pool.js";

/** a host that never resolves: the refusal comes back without any network */
export const NOWHERE = "nosuch-host.invalid";

export interface Harness {
  client: Client;
  created: CreatedServer;
  tools: McpTool[];
  home: string;
  /** callTool through the SDK client; throws if the client rejects the result (output schema) */
  call(name: string, args: unknown): Promise<{ sc: Record<string, any>; isError: boolean; bytes: number }>;
  close(): Promise<void>;
}

const ajv = new Ajv({ strict: false, allErrors: true });
const closed = new Map<string, ReturnType<typeof ajv.compile>>();
function closedValidator(name: string) {
  let v = closed.get(name);
  if (!v) {
    const def = allTools.find((t) => t.name === name)!;
    v = ajv.compile(outputJsonSchema(def, { closed: true }));
    closed.set(name, v);
  }
  return v;
}

export interface HarnessOptions {
  /** ssh config for the remote (default: one that makes *.invalid fail fast) */
  sshConfig?: string;
  /** RGT_HOME for the ledger (default: a fresh temp dir) */
  rgtHome?: string;
  tools?: string;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-tools-"));
  const sshConfig = opts.sshConfig ?? path.join(home, "ssh_config");
  if (!opts.sshConfig) fs.writeFileSync(sshConfig, "Host *.invalid\n  ConnectTimeout 2\n");
  const ledger = new Ledger(opts.rgtHome ?? path.join(home, "state"));
  const created = createServer({ remote: new SshRemote({ sshConfig }), ledger, tools: opts.tools ?? "all" });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await created.server.connect(serverSide);
  const client = new Client({ name: "rgt-tool-tests", version: "1" }, { capabilities: {} });
  await client.connect(clientSide);
  const { tools } = await client.listTools();
  return {
    client,
    created,
    tools,
    home,
    async call(name, args) {
      const r = await client.callTool({ name, arguments: args as Record<string, unknown> }, undefined, { timeout: 60_000 });
      const sc = r.structuredContent as Record<string, any>;
      expect(sc, `${name}: structuredContent`).toBeTruthy();
      const v = closedValidator(name);
      expect(v(sc) ? [] : v.errors, `${name}: every returned field is declared`).toEqual([]);
      expect(typeof sc.summary === "string" && sc.summary.length > 0, `${name}: summary`).toBe(true);
      expect(r.isError === true, `${name}: isError matches ok:false`).toBe(sc.ok === false);
      const text = (r.content as { type: string; text: string }[])[0]?.text ?? "";
      expect(JSON.parse(text), `${name}: text content is the same JSON`).toEqual(sc);
      return { sc, isError: r.isError === true, bytes: Buffer.byteLength(text) };
    },
    async close() {
      await client.close().catch(() => {});
      await created.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

type Schema = Record<string, any>;

/** every string-typed node in a JSON Schema, with its path */
export function stringNodes(s: Schema, at = ""): { at: string; node: Schema }[] {
  const out: { at: string; node: Schema }[] = [];
  if (!s || typeof s !== "object") return out;
  if (s.type === "string") out.push({ at: at || "(root)", node: s });
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...stringNodes(v as Schema, at ? `${at}.${k}` : k));
  if (s.items) out.push(...stringNodes(s.items, `${at}[]`));
  if (s.additionalProperties && typeof s.additionalProperties === "object") out.push(...stringNodes(s.additionalProperties, `${at}{}`));
  if (s.propertyNames) out.push(...stringNodes(s.propertyNames, `${at}{key}`));
  for (const u of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) out.push(...stringNodes(u, at));
  return out;
}

/** The metadata every tool must carry, as a client sees it after listTools(). */
export function metadataChecks(get: () => Harness, name: string): void {
  it(`${name}: title, four annotations derived from its effect, schemas valid JSON Schema`, () => {
    const t = get().tools.find((x) => x.name === name)!;
    expect(t, name).toBeDefined();
    const def = allTools.find((x) => x.name === name)!;
    expect(t.title).toBeTruthy();
    expect(t.annotations).toMatchObject({
      readOnlyHint: def.effect === "read",
      destructiveHint: def.effect === "destroy",
      openWorldHint: !def.local,
    });
    expect(typeof t.annotations?.idempotentHint).toBe("boolean");
    expect(t.outputSchema).toBeDefined();
    // valid against the JSON Schema (draft-07) meta-schema
    expect(ajv.validateSchema(t.inputSchema), JSON.stringify(ajv.errors)).toBe(true);
    expect(ajv.validateSchema(t.outputSchema!), JSON.stringify(ajv.errors)).toBe(true);
    // portable: an object at the top, no top-level union; output schema open to tomorrow's fields
    expect(t.inputSchema.type).toBe("object");
    expect((t.inputSchema as Schema).anyOf).toBeUndefined();
    expect(JSON.stringify(t.outputSchema)).not.toContain('"additionalProperties":false');
    expect((t.outputSchema as Schema).required).toEqual(expect.arrayContaining(["ok", "summary", "warnings"]));
    // every string input is bounded
    const unbounded = stringNodes(t.inputSchema as Schema).filter(({ node }) => node.maxLength === undefined && !node.enum).map((x) => x.at);
    expect(unbounded).toEqual([]);
    expect(t.description!.length).toBeGreaterThan(60);
  });
}

function wrongTypeFor(s: Schema): unknown {
  if (s.type === "string") return 42;
  if (s.type === "number" || s.type === "integer") return "lots";
  if (s.type === "boolean") return "yes";
  if (s.type === "array") return "not-a-list";
  return 17;
}

/**
 * Malformed arguments → a BAD_INPUT result naming the field, through the client (never a protocol error,
 * never an echo of the input): a missing required field, a wrong type per field, an over-long string
 * per string field, arguments that are not an object.
 */
export function badArgumentChecks(get: () => Harness, name: string, valid: Record<string, unknown>): void {
  it(`${name}: malformed arguments are BAD_INPUT results naming the field`, async () => {
    const h = get();
    const t = h.tools.find((x) => x.name === name)!;
    const props = (t.inputSchema.properties ?? {}) as Record<string, Schema>;
    const required = (t.inputSchema.required ?? []) as string[];
    for (const f of required) {
      const args = { ...valid };
      delete args[f];
      const { sc } = await h.call(name, args);
      expect(sc.refused?.code, `${name} without ${f}`).toBe("BAD_INPUT");
      expect(sc.field, `${name} without ${f}`).toBe(f);
      expect(sc.refused.reason).toContain(f);
    }
    for (const [f, s] of Object.entries(props)) {
      const { sc } = await h.call(name, { ...valid, [f]: wrongTypeFor(s) });
      expect(sc.refused?.code, `${name}.${f} of the wrong type`).toBe("BAD_INPUT");
      expect(sc.refused.reason, `${name}.${f}`).toContain(f);
      if (s.type === "string" && s.maxLength) {
        const huge = "x".repeat(Math.max(s.maxLength + 1, 100_000));
        const r = await h.call(name, { ...valid, [f]: huge });
        expect(r.sc.refused?.code, `${name}.${f} too long`).toBe("BAD_INPUT");
        expect(r.sc.field).toBe(f);
        expect(r.bytes, `${name}.${f}: the reply does not echo the input`).toBeLessThan(2048);
      }
    }
    for (const notAnObject of ["a string", [1, 2], 7]) {
      const { sc } = await h.call(name, notAnObject);
      expect(sc.refused?.code, `${name} with arguments ${JSON.stringify(notAnObject)}`).toBe("BAD_INPUT");
    }
  });
}

/** Call and expect a refusal with this code; returns the structured result. */
export async function expectRefusal(h: Harness, name: string, args: unknown, code: string): Promise<Record<string, any>> {
  const { sc, isError, bytes } = await h.call(name, args);
  expect(sc.refused?.code, `${name} ${JSON.stringify(args).slice(0, 120)}: ${sc.summary}`).toBe(code);
  expect(isError).toBe(true);
  expect(sc.ok).toBe(false);
  expect(sc.refused.remedy.length).toBeGreaterThan(10);
  expect(sc.summary).toContain(code);
  expect(bytes).toBeLessThan(4096);
  return sc;
}

/** One harness per test file: started before the first test, closed after the last; returns a getter. */
export function useHarness(opts: HarnessOptions = {}): () => Harness {
  let h: Harness | undefined;
  beforeAll(async () => { h = await startHarness(opts); });
  afterAll(async () => { await h?.close(); });
  return () => h!;
}
