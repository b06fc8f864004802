/*
 * Web shells: server-side scripts that run commands or code taken straight from the
 * HTTP request. Each rule needs the language's code marker plus an execution sink fed
 * by request input, so ordinary templates that merely read a form field do not match.
 */
rule SECOPS_Webshell_PHP_Request_Exec
{
    meta:
        severity = "critical"
        description = "PHP web shell: code or command execution of request input"
    strings:
        $php = "<?" ascii
        $s1 = /\b(eval|assert|system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec)\s*\(\s*@?\s*\$_(GET|POST|REQUEST|COOKIE|SERVER)\b/ nocase
        $s2 = /\b(eval|assert)\s*\(\s*@?\s*(base64_decode|gzinflate|str_rot13|gzuncompress|stripslashes)\s*\(\s*@?\s*\$_(GET|POST|REQUEST|COOKIE)\b/ nocase
        $s3 = /`\s*\$_(GET|POST|REQUEST|COOKIE)\[/
        $s4 = /preg_replace\s*\(\s*['"].{1,40}\/e[a-z]*['"]\s*,\s*\$_(GET|POST|REQUEST|COOKIE)/ nocase
    condition:
        $php and any of ($s*)
}

rule SECOPS_Webshell_PHP_Obfuscated_Eval
{
    meta:
        severity = "high"
        description = "PHP eval of decoded or decompressed data, typical of packed web shells"
    strings:
        $php = "<?" ascii
        $e1 = /\beval\s*\(\s*@?\s*(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|hex2bin)\s*\(/ nocase
        $e2 = /\bassert\s*\(\s*@?\s*(base64_decode|gzinflate|gzuncompress|str_rot13)\s*\(/ nocase
    condition:
        $php and any of ($e*)
}

rule SECOPS_Webshell_JSP_Runtime_Exec
{
    meta:
        severity = "critical"
        description = "JSP web shell: runs a request parameter as an operating system command"
    strings:
        $jsp = "<%" ascii
        $r1 = /Runtime\.getRuntime\(\)\.exec\s*\(\s*request\.getParameter\s*\(/
        $r2 = /new\s+ProcessBuilder\s*\([^;]{0,80}request\.getParameter\s*\(/
        $r3 = /\.exec\s*\(\s*new\s+String\[\]\s*\{[^}]{0,80}request\.getParameter\s*\(/
    condition:
        $jsp and any of ($r*)
}

rule SECOPS_Webshell_ASP_Request_Exec
{
    meta:
        severity = "critical"
        description = "ASP/ASP.NET web shell: evaluates or executes request input"
    strings:
        $tag = "<%" ascii
        $a1 = /\b(eval|execute|executeglobal)\s*\(?\s*request(\.(item|form|querystring))?\s*[\(\[]/ nocase
        $a2 = /wscript\.shell["']\s*\)[^%]{0,200}\.(exec|run)\s*\(\s*["']?[^)]{0,40}request/ nocase
        $a3 = /Process\.Start\s*\([^;]{0,80}Request(\.(Form|QueryString|Params))?\s*\[/ nocase
    condition:
        $tag and any of ($a*)
}

/*
 * Engine hint, not a finding: server-side script that reads request input or evaluates
 * decoded data. Objects it matches get the engine's taint check for web shells
 * (secops/scanning/webshells.py: request input reaching an execution sink through
 * variables and wrappers, packed PHP unpacked).
 */
rule SECOPS_Hint_Server_Script
{
    meta:
        severity = "info"
        description = "engine hint: server-side script reading request input"
        hint = "webshell"
    strings:
        $t1 = "<?" ascii
        $t2 = "<%" ascii
        $t3 = "<jsp:" ascii
        $t4 = /<script[^>]{1,80}runat/ nocase
        $s1 = "$_GET" ascii
        $s2 = "$_POST" ascii
        $s3 = "$_REQUEST" ascii
        $s4 = "$_COOKIE" ascii
        $s5 = "$_SERVER" ascii
        $s6 = "$_FILES" ascii
        $s7 = "php://input" nocase
        $s8 = "getallheaders" nocase
        $s9 = "_VARS" ascii
        $s10 = /request\s{0,5}\.\s{0,5}get/ ascii
        $s11 = /request\s{0,5}(\.\s{0,5}(form|querystring|item|params|cookies|headers|servervariables)\s{0,5})?[\(\[]/ nocase
        $s12 = /request\s{0,5}\.\s{0,5}(binaryread|inputstream)/ nocase
        $s13 = /['"]_(GET|POST|REQUEST|COOKIE)['"]/
        $p1 = /(eval|assert)\s{0,10}\(\s{0,10}@?\s{0,10}(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|hex2bin|rawurldecode|urldecode)\s{0,10}\(/ nocase
    condition:
        any of ($t*) and any of ($s*, $p*)
}
