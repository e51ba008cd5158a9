// The browser benches drive Chromium through tests/e2e's playwright-core. A fresh clone has not
// installed it yet, so the benches install it themselves (the lockfile's exact versions, as
// scripts/test.sh does) before importing anything that needs it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'e2e');

export function ensureE2eDeps() {
  if (fs.existsSync(path.join(E2E, 'node_modules', 'playwright-core', 'package.json'))) return;
  console.log('installing tests/e2e dependencies (npm ci; once)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: E2E, stdio: 'inherit' });
}
