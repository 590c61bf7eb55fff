// Entry point of the admin page (admin.html): loads the styles, sets up the language, starts the
// panel.
import "../style.css";
import "./admin.css";
import { byId } from "../dom";
import { initLang } from "../lang";
import { AdminPanel } from "./panel";

initLang(byId("lang-switch", HTMLSelectElement));
new AdminPanel().start();
