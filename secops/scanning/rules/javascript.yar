/*
 * Obfuscated JavaScript inside HTML: decoders feeding eval or document.write, the
 * "p,a,c,k,e,r" packer, long runs of hex escapes and heavy String.fromCharCode use.
 * The HTML marker keeps plain .js libraries (which minify legitimately) out of scope.
 */
rule SECOPS_JS_Obfuscated_In_HTML
{
    meta:
        severity = "high"
        description = "Obfuscated JavaScript in an HTML document"
    strings:
        $html = "<script" nocase
        $o1 = /eval\s*\(\s*(unescape|atob|decodeURIComponent|escape)\s*\(/ nocase
        $o2 = /document\.write\s*\(\s*(unescape|atob|decodeURIComponent)\s*\(/ nocase
        $o3 = "eval(function(p,a,c,k,e," nocase
        $hex = /(\\x[0-9a-fA-F]{2}){40}/
        $fcc = "String.fromCharCode(" nocase
    condition:
        $html and (any of ($o*) or $hex or #fcc > 10)
}
