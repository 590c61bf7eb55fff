// Entry point: loads the styles, sets up language, banner and status indicator, starts the app.
import "./style.css";
import { App } from "./app";
import { initBanner } from "./banner";
import { byId } from "./dom";
import { initLang } from "./lang";
import { initStatus } from "./status";

initLang(byId("lang-switch", HTMLSelectElement));
initBanner();
initStatus();
new App().start();
