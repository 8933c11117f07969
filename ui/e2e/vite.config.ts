import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

// Builds the UI behind a mocked IPC entry for the browser tests.
const here = fileURLToPath(new URL(".", import.meta.url));
export default defineConfig({
  root: here,
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
});
