#!/usr/bin/env node
// Checks every Markdown link and image in the repository's own documentation:
// README.md, every *.md under docs/, and every other *.md that git tracks (or would track:
// untracked files that .gitignore does not exclude), vendored folders left out.
//
//   node scripts/check-links.mjs [FILE.md ...]     # default: all of the above
//
// - Relative links must name an existing file or folder (relative to the Markdown file's folder,
//   or to the repository root when they start with "/"; "?query" is ignored).
// - "#anchor" fragments, in the same file or in another .md file, must match a heading under
//   GitHub's slug rules (lowercased; punctuation other than "-" and "_" removed; each space a "-";
//   repeated headings get "-1", "-2", ...), or an explicit <a id="..."> / <a name="...">.
// - http(s) and mailto links are not fetched (no network): they must only parse as URLs.
// - Inline links [t](url "title"), images ![a](src), autolinks <https://...>, reference links
//   [t][ref] / [t][] / [ref] with "[ref]: url" definitions, and <a href>/<img src> are checked;
//   anything in fenced code blocks, inline code spans or HTML comments is ignored.
//
// Prints "file:line: target (why)" for each broken link and exits 1, or prints
// "N links checked in M files, all resolve" and exits 0. Node >= 18, no dependencies.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VENDORED = new Set(['node_modules', 'target', 'dist', 'pkg-threads', 'pkg-threads.new', 'pkg-relaxed', 'pkg-relaxed.new', '.git',
    'vendor', 'third_party', '.device', 'work']);

// ---------------------------------------------------------------- which files

function isVendored(rel) {
    return rel.split('/').some((part) => VENDORED.has(part));
}

function walkMarkdown(dirRel, out) {
    const dirAbs = path.join(ROOT, dirRel);
    if (!existsSync(dirAbs)) return;
    for (const entry of readdirSync(dirAbs, { withFileTypes: true })) {
        const rel = path.posix.join(dirRel, entry.name);
        if (isVendored(rel)) continue;
        if (entry.isDirectory()) walkMarkdown(rel, out);
        else if (entry.isFile() && entry.name.endsWith('.md')) out.add(rel);
    }
}

function markdownFiles() {
    const files = new Set();
    if (existsSync(path.join(ROOT, 'README.md'))) files.add('README.md');
    walkMarkdown('docs', files);
    try {
        const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.md'],
            { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        for (const rel of listed.split('\0')) {
            if (rel && !isVendored(rel) && existsSync(path.join(ROOT, rel))) files.add(rel);
        }
    } catch {
        // Not a git checkout (or no git): README.md and docs/ only.
    }
    return [...files].sort();
}

// ---------------------------------------------------------------- Markdown scanning

// Replaces every character but newlines in text[from, to) with spaces, keeping offsets and lines.
function blank(chars, from, to) {
    for (let i = from; i < to; i++) if (chars[i] !== '\n') chars[i] = ' ';
}

// Blanks fenced code blocks (``` or ~~~, closed by a fence of the same kind at least as long, or by
// the end of the file) and HTML comments. Returns the text with the same length and line breaks.
function blankCodeBlocksAndComments(text) {
    const lines = text.split('\n');
    const out = [];
    let fence = null;
    for (const line of lines) {
        if (fence) {
            const close = line.match(/^[ \t]*(`{3,}|~{3,})[ \t]*$/);
            if (close && close[1][0] === fence[0] && close[1].length >= fence.length) fence = null;
            out.push(' '.repeat(line.length));
            continue;
        }
        // Fences inside list items are indented further than 3 spaces: any indentation counts.
        const open = line.match(/^[ \t]*(`{3,}|~{3,})(.*)$/);
        if (open && !(open[1][0] === '`' && open[2].includes('`'))) {
            fence = open[1];
            out.push(' '.repeat(line.length));
            continue;
        }
        out.push(line);
    }
    let result = out.join('\n');
    result = result.replace(/<!--[\s\S]*?-->/g, (m) => m.replace(/[^\n]/g, ' '));
    return result;
}

// Blanks inline code spans: a run of N backticks up to the next run of exactly N backticks within
// the same paragraph (no blank line between). Unmatched runs stay as they are.
function blankCodeSpans(text) {
    const chars = text.split('');
    let i = 0;
    while (i < chars.length) {
        if (chars[i] === '\\') { i += 2; continue; }
        if (chars[i] !== '`') { i++; continue; }
        let n = 0;
        while (chars[i + n] === '`') n++;
        const start = i;
        let j = i + n;
        let found = -1;
        while (j < chars.length) {
            if (chars[j] === '\n') {
                // A blank line ends the paragraph, and with it any chance of closing the span.
                let k = j + 1;
                while (k < chars.length && (chars[k] === ' ' || chars[k] === '\t')) k++;
                if (k >= chars.length || chars[k] === '\n') break;
            }
            if (chars[j] === '`') {
                let m = 0;
                while (chars[j + m] === '`') m++;
                if (m === n) { found = j; break; }
                j += m;
                continue;
            }
            j++;
        }
        if (found < 0) { i = start + n; continue; }
        blank(chars, start, found + n);
        i = found + n;
    }
    return chars.join('');
}

function lineStarts(text) {
    const starts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
    return starts;
}

function lineOf(starts, offset) {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return lo + 1;
}

function normalizeLabel(label) {
    return label.trim().replace(/\s+/g, ' ').toLowerCase();
}

const DEFINITION = /^ {0,3}\[((?:[^\]\\]|\\.)+)\]:[ \t]*(?:<([^>\n]*)>|(\S+))(?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*$/gm;

// Finds the index of the "]" that closes the "[" at `open`, or -1 (brackets nest; a blank line
// or the end of the text stops the search).
function closingBracket(text, open) {
    let depth = 0;
    for (let i = open; i < text.length; i++) {
        const c = text[i];
        if (c === '\\') { i++; continue; }
        if (c === '\n' && /^\n[ \t]*(\n|$)/.test(text.slice(i, i + 80))) return -1;
        if (c === '[') depth++;
        else if (c === ']') { depth--; if (depth === 0) return i; }
    }
    return -1;
}

// Parses an inline link's "(destination "title")" starting at text[at] === "(".
// Returns {dest, destOffset, end} or null when it is not a valid inline link.
function inlineDestination(text, at) {
    let i = at + 1;
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n')) i++;
    let dest = '';
    const destOffset = i;
    if (text[i] === '<') {
        const close = text.indexOf('>', i);
        if (close < 0 || text.slice(i, close).includes('\n')) return null;
        dest = text.slice(i + 1, close);
        i = close + 1;
    } else {
        let depth = 0;
        const startDest = i;
        while (i < text.length) {
            const c = text[i];
            if (c === '\\') { i += 2; continue; }
            if (c === ' ' || c === '\t' || c === '\n') break;
            if (c === '(') depth++;
            else if (c === ')') { if (depth === 0) break; depth--; }
            i++;
        }
        dest = text.slice(startDest, i);
    }
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n')) i++;
    if (text[i] === '"' || text[i] === "'" || text[i] === '(') {
        const closer = text[i] === '(' ? ')' : text[i];
        const close = text.indexOf(closer, i + 1);
        if (close < 0) return null;
        i = close + 1;
        while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n')) i++;
    }
    if (text[i] !== ')') return null;
    return { dest, destOffset, end: i + 1 };
}

// Every link of one Markdown text: [{target, offset, kind}], plus problems found while parsing.
function extractLinks(source) {
    const text = blankCodeSpans(blankCodeBlocksAndComments(source));
    const links = [];
    const problems = [];
    const definitions = new Map();

    // Reference definitions: each is a link to check, and a label for [t][ref].
    for (const m of text.matchAll(DEFINITION)) {
        const label = normalizeLabel(m[1]);
        const dest = m[2] !== undefined ? m[2] : m[3];
        if (!definitions.has(label)) definitions.set(label, dest);
        links.push({ target: dest, offset: m.index + m[0].indexOf(']:') + 2, kind: 'definition' });
    }
    // Blank the definitions so that their "[label]" is not read as a shortcut link.
    const scan = text.replace(DEFINITION, (m) => m.replace(/[^\n]/g, ' '));

    for (let i = 0; i < scan.length; i++) {
        const c = scan[i];
        if (c === '\\') { i++; continue; }
        if (c !== '[') continue;
        const close = closingBracket(scan, i);
        if (close < 0) continue;
        const next = scan[close + 1];
        if (next === '(') {
            const parsed = inlineDestination(scan, close + 1);
            if (parsed) links.push({ target: parsed.dest, offset: parsed.destOffset, kind: 'inline' });
            // Keep scanning inside the text: an image inside a link is a link of its own.
            continue;
        }
        if (next === '[') {
            const refClose = scan.indexOf(']', close + 2);
            if (refClose > 0 && !scan.slice(close + 2, refClose).includes('\n\n')) {
                let label = scan.slice(close + 2, refClose);
                if (label.trim() === '') label = scan.slice(i + 1, close);
                const key = normalizeLabel(label);
                if (definitions.has(key)) {
                    // The definition itself is checked once, where it is written.
                } else {
                    problems.push({ target: `[${label.trim()}]`, offset: i, why: 'no reference definition for this label' });
                }
                i = refClose;
                continue;
            }
        }
        // Shortcut reference [label]: a link only when the label is defined (else plain text,
        // such as "[SEP]" or "[WebKit PR 10228]"); its definition is checked where it is written.
    }

    // Autolinks <scheme:...>.
    for (const m of scan.matchAll(/<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>/g)) {
        links.push({ target: m[1], offset: m.index + 1, kind: 'autolink' });
    }
    // Raw HTML links and images.
    for (const m of scan.matchAll(/<(?:a|img|source)\b[^>]*?\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) {
        const target = m[1] !== undefined ? m[1] : m[2];
        links.push({ target, offset: m.index + m[0].lastIndexOf(target), kind: 'html' });
    }
    return { links, problems };
}

// ---------------------------------------------------------------- anchors

// GitHub's slug of a heading's text: github-slugger on the rendered text.
function githubSlug(rendered) {
    return rendered.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

// The text GitHub renders for a heading's Markdown: code spans keep their content, links and
// images keep their text, emphasis markers, HTML tags and backslashes before punctuation go.
function renderHeading(markdown) {
    const parts = markdown.split(/(`+)([\s\S]*?[^`])\1(?!`)/);
    let out = '';
    for (let k = 0; k < parts.length; k++) {
        if (k % 3 === 2) { out += parts[k].replace(/^ (.*) $/, '$1'); continue; }
        if (k % 3 === 1) continue;
        let s = parts[k];
        s = s.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1');
        s = s.replace(/!?\[([^\]]*)\]\[[^\]]*\]/g, '$1');
        s = s.replace(/<[^>]+>/g, '');
        s = s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
            if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
            return ENTITIES[e.toLowerCase()] ?? m;
        });
        s = s.replace(/\*+/g, '');
        s = s.replace(/(^|[^\p{L}\p{N}])_+(?=[\p{L}\p{N}])/gu, '$1').replace(/([\p{L}\p{N}])_+(?=[^\p{L}\p{N}_]|$)/gu, '$1');
        s = s.replace(/~~/g, '');
        s = s.replace(/\\([!-/:-@[-`{-~])/g, '$1');
        out += s;
    }
    return out.trim();
}

const anchorCache = new Map();

// All anchors of a Markdown file: heading slugs (with GitHub's -1, -2 for repeats) and explicit
// id/name attributes.
function anchorsOf(absPath) {
    if (anchorCache.has(absPath)) return anchorCache.get(absPath);
    const source = readFileSync(absPath, 'utf8');
    const text = blankCodeBlocksAndComments(source);
    const lines = text.split('\n');
    const anchors = new Set();
    const occurrences = new Map();
    const add = (rendered) => {
        const base = githubSlug(rendered);
        let slug = base;
        if (occurrences.has(slug)) {
            let n = occurrences.get(base);
            do { n++; slug = `${base}-${n}`; } while (occurrences.has(slug));
            occurrences.set(base, n);
        }
        occurrences.set(slug, 0);
        anchors.add(slug);
    };
    for (let k = 0; k < lines.length; k++) {
        const line = lines[k];
        const atx = line.match(/^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/);
        if (atx) { add(renderHeading(atx[1] ?? '')); continue; }
        const next = lines[k + 1];
        if (next !== undefined && /^ {0,3}(=+|-+)[ \t]*$/.test(next) && line.trim() !== '' &&
            !/^ {0,3}([-*+>]|\d+[.)]|\||#)/.test(line) && !line.includes('|')) {
            add(renderHeading(line.trim()));
            k++;
        }
    }
    for (const m of text.matchAll(/<[A-Za-z][A-Za-z0-9]*\b[^>]*?\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
        anchors.add(m[1] ?? m[2] ?? m[3]);
    }
    anchorCache.set(absPath, anchors);
    return anchors;
}

// ---------------------------------------------------------------- checking one target

function safeDecode(s) {
    try { return decodeURIComponent(s); } catch { return s; }
}

// Returns null when the target resolves, else the reason it does not.
function check(target, fileRel) {
    const t = target.trim();
    if (t === '') return 'empty link';
    const scheme = t.match(/^([A-Za-z][A-Za-z0-9+.-]*):/);
    if (scheme && !/^[A-Za-z]:[\\/]/.test(t)) {
        const name = scheme[1].toLowerCase();
        if (name === 'http' || name === 'https') {
            let url;
            try { url = new URL(t); } catch { return 'not a valid URL'; }
            if (!url.hostname) return 'URL without a host';
            if (/\s/.test(t)) return 'URL with white space';
            return null;
        }
        if (name === 'mailto') {
            return /^mailto:[^@\s]+@[^@\s]+$/i.test(t.split('?')[0]) ? null : 'not a valid mailto address';
        }
        return `unsupported scheme "${name}:" (only http, https and mailto are expected)`;
    }
    if (t.startsWith('//')) {
        try { new URL(`https:${t}`); return null; } catch { return 'not a valid URL'; }
    }
    const hash = t.indexOf('#');
    let pathPart = hash >= 0 ? t.slice(0, hash) : t;
    const fragment = hash >= 0 ? safeDecode(t.slice(hash + 1)) : null;
    const query = pathPart.indexOf('?');
    if (query >= 0) pathPart = pathPart.slice(0, query);
    pathPart = safeDecode(pathPart);

    const fileAbs = path.join(ROOT, fileRel);
    let targetAbs;
    if (pathPart === '') targetAbs = fileAbs;
    else if (pathPart.startsWith('/')) targetAbs = path.join(ROOT, pathPart);
    else targetAbs = path.resolve(path.dirname(fileAbs), pathPart);

    const relToRoot = path.relative(ROOT, targetAbs);
    if (relToRoot.startsWith('..') || path.isAbsolute(relToRoot)) return 'points outside the repository';
    if (!existsSync(targetAbs)) return 'no such file or folder';
    if (fragment === null || fragment === '') return null;
    if (statSync(targetAbs).isDirectory()) return null; // a folder's README: not checked
    if (!/\.(md|markdown)$/i.test(targetAbs)) return null; // #L10 and the like: not checked
    const anchors = anchorsOf(targetAbs);
    if (anchors.has(fragment)) return null;
    const where = pathPart === '' ? 'this file' : path.relative(ROOT, targetAbs).split(path.sep).join('/');
    return `no heading or anchor "#${fragment}" in ${where}`;
}

// ---------------------------------------------------------------- main

const args = process.argv.slice(2);
const files = args.length > 0 ? args.map((f) => path.relative(ROOT, path.resolve(f)).split(path.sep).join('/')) : markdownFiles();
let checked = 0;
const broken = [];
for (const rel of files) {
    const source = readFileSync(path.join(ROOT, rel), 'utf8');
    const starts = lineStarts(source);
    const { links, problems } = extractLinks(source);
    const found = [];
    for (const p of problems) {
        checked++;
        found.push({ line: lineOf(starts, p.offset), text: `${p.target} (${p.why})` });
    }
    for (const link of links) {
        checked++;
        const why = check(link.target, rel);
        if (why) found.push({ line: lineOf(starts, link.offset), text: `${link.target} (${why})` });
    }
    found.sort((a, b) => a.line - b.line);
    for (const f of found) broken.push(`${rel}:${f.line}: ${f.text}`);
}
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
if (broken.length > 0) {
    for (const line of broken) console.log(line);
    console.log(`${broken.length} broken of ${plural(checked, 'link')} in ${plural(files.length, 'file')}`);
    process.exit(1);
}
console.log(`${plural(checked, 'link')} checked in ${plural(files.length, 'file')}, all resolve`);
