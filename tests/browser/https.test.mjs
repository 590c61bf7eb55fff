// Browsers give the camera and microphone only to secure pages: over HTTPS (here with a certificate
// made at start, the warning accepted) a page on a real host name gets them and joins a call;
// over plain HTTP the same page does not even see the API.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { enterRoom, expectVisible, launchBrowser } from "../support/browser.mjs";

const HOST = "noom.test";
let browser;
let secure;
let plain;

before(async () => {
  secure = await startServer({ args: ["--tls-self-signed", HOST] });
  plain = await startServer({ args: ["--public-url", `http://${HOST}`] });
  // The name resolves to loopback, which is no secure context of its own, as it would on a LAN.
  browser = await launchBrowser({ extraArgs: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
});

after(async () => {
  await browser?.close();
  await secure?.stop();
  await plain?.stop();
});

const onHost = (url) => url.replace("127.0.0.1", HOST);

test("over HTTPS a page gets the camera and shows its preview; over plain HTTP it cannot", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const page = await context.newPage();
    await page.goto(onHost(secure.url));
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    await enterRoom(page, { nickname: "Tess", room: "over tls" });
    await page.locator("#call-open").click();
    await expectVisible(page.locator("#call-preview"));
    await page.waitForFunction(() => {
      const video = document.querySelector("#preview-video");
      return video instanceof HTMLVideoElement && video.srcObject instanceof MediaStream && video.srcObject.getVideoTracks().length > 0;
    });

    await page.goto(onHost(plain.url));
    assert.deepEqual(await page.evaluate(() => ({ secure: window.isSecureContext, media: "mediaDevices" in navigator })), {
      secure: false,
      media: false,
    });
  } finally {
    await context.close();
  }
});
