/**
 * Renders demo/public/icons/icon.svg to the PNG icons the web app manifest lists, with the
 * same Chromium the tests use. Run once after changing the SVG: `npx tsx demo/scripts/icons.ts`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../test/browser/chromium.ts';

const dir = join(import.meta.dirname, '../public/icons');
const svg = readFileSync(join(dir, 'icon.svg'), 'utf8');

const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
try {
  for (const { file, size, padding } of [
    { file: 'icon-192.png', size: 192, padding: 0 },
    { file: 'icon-512.png', size: 512, padding: 0 },
    // Maskable icons are cropped to a circle by some launchers: keep the drawing in the middle 80%.
    { file: 'icon-maskable-512.png', size: 512, padding: 0.1 },
  ]) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    const inner = Math.round(size * (1 - 2 * padding));
    await page.setContent(
      `<body style="margin:0;background:#2f5d8a;display:grid;place-items:center;height:${size}px">
         <div style="width:${inner}px;height:${inner}px">${svg.replace('<svg ', `<svg width="${inner}" height="${inner}" `)}</div>
       </body>`,
    );
    await page.screenshot({ path: join(dir, file), omitBackground: padding === 0 });
    await page.close();
  }
} finally {
  await browser.close();
}
