// The console is built into bin/console next to twinhubd (CMake passes TWINHUB_CONSOLE_OUT), which
// serves it at /console/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  build: {
    outDir: process.env.TWINHUB_CONSOLE_OUT || '../build/bin/console',
    emptyOutDir: true,
    sourcemap: false,
  },
});
