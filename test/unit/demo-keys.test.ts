/**
 * The embedded demo box makes its keys with ssh2, whose generator sometimes drops a leading zero byte from an
 * ed25519 public key (its own parser then rejects it: "Malformed OpenSSH public key"). Every pair the demo
 * uses must parse.
 */
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { ed25519Pair } from "../../src/demo/embedded.js";

describe("demo key pairs", () => {
  it("ssh2's raw generator really does emit unparsable keys now and then (the reason for the guard)", () => {
    let bad = 0;
    for (let i = 0; i < 4000 && bad === 0; i++) if (ssh2.utils.parseKey(ssh2.utils.generateKeyPairSync("ed25519").public) instanceof Error) bad++;
    expect(bad).toBeGreaterThan(0);
  });

  it("every pair the demo draws parses, public and private", () => {
    for (let i = 0; i < 1500; i++) {
      const k = ed25519Pair();
      expect(ssh2.utils.parseKey(k.public)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(k.private)).not.toBeInstanceOf(Error);
    }
  });
});
