// Drives the provider's own pages the way a person's browser would: follows redirects with a
// cookie jar and submits each form it is shown (filling the login form), until the flow ends
// on a page without a form, or on the app's loopback redirect (which it requests, as a browser
// does). Used to approve device sign-ins and to complete authorization-code sign-ins.
//
//   node browser.mjs URL [--login USER] [--deny]
// Prints one JSON line: {"final_url", "status", "text"}; exits 1 if the flow broke.
const args = process.argv.slice(2);
const start = args[0];
const login = args.includes('--login') ? args[args.indexOf('--login') + 1] : 'alice';
const deny = args.includes('--deny');
if (!start) {
  console.error('usage: node browser.mjs URL [--login USER] [--deny]');
  process.exit(2);
}

const jar = new Map();
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
const keep = (res) => {
  for (const c of res.headers.getSetCookie?.() ?? []) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
};
const decode = (s) =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i'));
  return m ? decode(m[2] ?? m[3]) : undefined;
};

function firstForm(html) {
  const m = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!m) return null;
  const fields = [];
  for (const [tag] of m[2].matchAll(/<(input|button)\b[^>]*>/gi)) {
    const name = attr(tag, 'name');
    if (!name) continue;
    const type = (attr(tag, 'type') ?? 'text').toLowerCase();
    fields.push({ name, type, value: attr(tag, 'value') ?? '' });
  }
  return { action: attr(m[1], 'action'), method: (attr(m[1], 'method') ?? 'GET').toUpperCase(), fields };
}

let url = new URL(start);
let method = 'GET';
let body;
const providerOrigin = url.origin;
for (let step = 0; step < 25; step++) {
  const res = await fetch(url, {
    method,
    body,
    redirect: 'manual',
    headers: {
      cookie: cookieHeader(),
      ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
  });
  keep(res);
  if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
    url = new URL(res.headers.get('location'), url);
    method = 'GET';
    body = undefined;
    continue;
  }
  const text = await res.text();
  const form = url.origin === providerOrigin ? firstForm(text) : null;
  if (!form) {
    const plain = text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    console.log(JSON.stringify({ final_url: url.href, status: res.status, text: plain.slice(0, 300) }));
    process.exit(res.ok ? 0 : 1);
  }
  const params = new URLSearchParams();
  let pressed = false;
  for (const f of form.fields) {
    if (f.type === 'submit' || f.type === 'button') {
      // Press one button: "abort"/deny-like when asked to deny, else the first other one.
      const isAbort = /abort|deny|cancel/i.test(`${f.name} ${f.value}`);
      if (!pressed && isAbort === deny) {
        params.append(f.name, f.value);
        pressed = true;
      }
      continue;
    }
    if (f.name === 'login') params.append(f.name, login);
    else if (f.name === 'password') params.append(f.name, 'any-password');
    else params.append(f.name, f.value);
  }
  if (deny && !pressed) params.append('abort', 'yes');
  url = new URL(form.action ?? url.href, url);
  method = form.method;
  body = method === 'POST' ? params.toString() : undefined;
  if (method === 'GET') {
    url.search = params.toString();
  }
}
console.log(JSON.stringify({ final_url: url.href, status: 0, text: 'too many steps' }));
process.exit(1);
