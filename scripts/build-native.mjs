// Builds the native addon with node-gyp at install time.
// A failed build never fails the install: Sluice then runs on its pure node:fs fallback and
// says so once at startup (see src/native/addon.ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (process.env.SLUICE_SKIP_NATIVE === '1') {
  console.warn('sluice: SLUICE_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}

let nodeGypBin;
try {
  nodeGypBin = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  nodeGypBin = undefined;
}
// Build offline against the headers of the running Node when they are installed beside it
// (npm sets npm_config_nodedir for this too, but a direct `node scripts/build-native.mjs` does not).
const installPrefix = dirname(dirname(process.execPath));
const localHeaders = existsSync(join(installPrefix, 'include', 'node', 'node_api.h'));
const nodedir = process.env.npm_config_nodedir || (localHeaders ? installPrefix : undefined);
const gypArgs = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const command = nodeGypBin ? process.execPath : 'node-gyp';
const args = nodeGypBin ? [nodeGypBin, ...gypArgs] : gypArgs;
const result = spawnSync(command, args, { cwd: join(root, 'native'), stdio: 'inherit' });
const built = existsSync(join(root, 'native', 'build', 'Release', 'sluice_native.node'));
if (result.status !== 0 || !built) {
  console.warn(
    'sluice: WARNING: the native addon did not build; Sluice will run on the slower node:fs fallback.',
  );
}
process.exit(0);
