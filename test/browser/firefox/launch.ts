/**
 * How the tests launch Firefox: Debian's firefox-esr (browsers cannot be downloaded here; CI
 * installs it), headless, on a fresh temporary profile, driven over WebDriver BiDi by
 * puppeteer-core (Playwright drives only its own patched Firefox builds).
 *
 * Invariants:
 * 1. Nothing leaves 127.0.0.1: puppeteer-core's own profile already points updates, add-ons,
 *    safe browsing, remote settings and health reports at a dead host; the prefs below turn off
 *    what it leaves on (telemetry, captive portal and connectivity checks, region lookups,
 *    pings), so a test run makes no outside request and waits on none.
 * 2. Permissions are left as a user would meet them: no pref answers a prompt (the storage
 *    prompt of navigator.storage.persist() stays unanswered, RELIABILITY 39).
 */
import puppeteer, { type Browser } from 'puppeteer-core';

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

/** The prefs of invariant 1, on top of puppeteer-core's profile. */
export const FIREFOX_PREFS: Record<string, string | number | boolean> = {
  'app.update.auto': false,
  'app.update.enabled': false,
  'browser.aboutHomeSnippets.updateUrl': '',
  'browser.newtabpage.activity-stream.telemetry': false,
  'browser.ping-centre.telemetry': false,
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'browser.safebrowsing.provider.google.updateURL': '',
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'browser.topsites.contile.enabled': false,
  'captivedetect.canonicalURL': '',
  'datareporting.usage.uploadEnabled': false,
  'extensions.blocklist.enabled': false,
  'extensions.systemAddon.update.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.trr.mode': 5,
  'security.OCSP.enabled': 0,
  'security.remote_settings.crlite_filters.enabled': false,
  'security.remote_settings.intermediates.enabled': false,
  // Honoured with MOZ_DISABLE_NONLOCAL_CONNECTIONS (release builds ignore it otherwise): remote
  // settings then skip every sync.
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.server': '',
  'toolkit.telemetry.unified': false,
};

/**
 * A headless Firefox on a temporary profile that puppeteer-core creates and removes, or on
 * `userDataDir` (kept: for tests that read the profile's files).
 */
export function launchFirefox(userDataDir?: string): Promise<Browser> {
  return puppeteer.launch({
    ...(userDataDir !== undefined && { userDataDir }),
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    protocol: 'webDriverBiDi',
    headless: true,
    extraPrefsFirefox: FIREFOX_PREFS,
    // Firefox's own test switch: a connection to anything but a local address is refused
    // (reported on stderr, not fatal in release builds).
    env: { ...process.env, MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1' },
    // A cold start of Firefox on a loaded 2-core machine can take several seconds.
    timeout: 60_000,
  });
}
