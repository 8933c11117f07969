import { defineConfig } from "vitest/config";

// Relative asset paths: Tauri serves ui/dist from its own protocol.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  server: { port: 5173, strictPort: true },
  test: { include: ["tests/**/*.test.ts"] },
});
