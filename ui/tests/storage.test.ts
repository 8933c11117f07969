import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("the web view keeps nothing", () => {
  it("never uses web storage, cookies or IndexedDB", () => {
    const files = sources(join(__dirname, "..", "src"));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      for (const api of ["localStorage", "sessionStorage", "indexedDB", "document.cookie", "caches."]) {
        expect(text.includes(api), `${f} uses ${api}`).toBe(false);
      }
    }
  });
});
