// ESLint flat config: the layers of docs/ARCHITECTURE.md enforced as import rules, plus one line-length rule.
// Run with `npm run lint` (test/ci.sh runs it).
import tseslint from "typescript-eslint";

const FS = ["fs", "node:fs", "fs/promises", "node:fs/promises"];
const PROC = ["child_process", "node:child_process"];
const WIRE = ["ssh2", "execa", "net", "node:net"];
const layer = (...names) => names.map((n) => `**/${n}/**`).concat(names.map((n) => `../${n}/*`));

/** one block per folder: what it may not import (type-only imports are allowed) */
function forbid(dir, { modules = [], layers = [], why }) {
  return {
    files: [`src/${dir}/**/*.ts`],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        paths: modules.map((name) => ({ name, message: why, allowTypeImports: true })),
        patterns: layers.length ? [{ group: layer(...layers), message: why, allowTypeImports: true }] : [],
      }],
    },
  };
}

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", ".rgt-test/**"] },
  {
    files: ["src/**/*.ts", "test/**/*.ts"],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: "module" },
    linterOptions: { reportUnusedDisableDirectives: "off" },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      "max-len": ["error", { code: 160, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true, ignoreComments: false }],
      "no-debugger": "error",
      "no-var": "error",
      "prefer-const": ["error", { destructuring: "all" }],
      "eqeqeq": ["error", "smart"],
    },
  },
  forbid("tools", {
    modules: [...FS, ...PROC, ...WIRE],
    why: "src/tools/ are thin adapters: filesystem, processes and ssh belong to remote/, ledger/, verify/ (docs/ARCHITECTURE.md)",
  }),
  forbid("guard", {
    modules: [...FS, ...PROC, ...WIRE],
    layers: ["remote", "ledger", "backends", "providers", "server", "tools", "verify", "knowledge"],
    why: "src/guard/ is pure policy: no I/O, no layer above common/ (docs/ARCHITECTURE.md)",
  }),
  forbid("common", {
    layers: ["guard", "remote", "ledger", "backends", "providers", "server", "tools", "verify", "knowledge", "cli"],
    why: "src/common/ is the bottom layer: it imports no other part of src/",
  }),
  forbid("knowledge", {
    modules: [...PROC, ...WIRE],
    layers: ["remote", "ledger", "backends", "providers", "server", "tools"],
    why: "src/knowledge/ reads profiles and references; it does no I/O to hosts",
  }),
  forbid("remote", {
    layers: ["knowledge", "ledger", "backends", "providers", "server", "tools"],
    why: "src/remote/ knows hosts and transports, not profiles, the ledger or MCP",
  }),
  forbid("ledger", {
    modules: [...PROC, ...WIRE],
    layers: ["remote", "backends", "providers", "server", "tools"],
    why: "src/ledger/ is local state; it neither talks to hosts nor knows MCP",
  }),
  forbid("backends", { layers: ["server", "tools"], why: "layers below the tools never import the tools or the MCP wiring" }),
  forbid("providers", { layers: ["server", "tools", "backends"], why: "layers below the tools never import the tools or the MCP wiring" }),
  forbid("verify", { layers: ["server", "tools", "backends", "providers"], why: "layers below the tools never import the tools or the MCP wiring" }),
  forbid("transfer", { layers: ["server", "tools"], why: "services below the tools never import the tools or the MCP wiring" }),
  forbid("teardown", { layers: ["server", "tools"], why: "services below the tools never import the tools or the MCP wiring" }),
  forbid("secret", { layers: ["server", "tools"], why: "services below the tools never import the tools or the MCP wiring" }),
  forbid("server", { modules: [...PROC, ...WIRE], why: "src/server/ wires MCP; processes and ssh belong to remote/" }),
);
