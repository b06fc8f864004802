/*
 * PowerShell download cradles (fetch a script from the network and run it in memory)
 * and encoded command lines (-EncodedCommand and its accepted abbreviations).
 */
rule SECOPS_PowerShell_Download_Cradle
{
    meta:
        severity = "critical"
        description = "PowerShell download cradle: downloads and runs code"
    strings:
        // All parts of a cradle must sit on one line: scattered words in a large
        // binary or a manual are not a cradle.
        $c1 = /new-object\s+(system\.)?net\.webclient[^\r\n]{0,200}\.download(string|data|file)\s*\(/ nocase
        $c2 = /\b(iex|invoke-expression)\b[^\r\n]{0,200}\.download(string|data)\s*\(/ nocase
        $c3 = /\b(iwr|irm|invoke-webrequest|invoke-restmethod)\b[^\r\n|]{1,300}\|\s*(iex|invoke-expression)\b/ nocase
        $c4 = /\.download(string|data)\s*\([^\r\n]{1,300}\|\s*(iex|invoke-expression)\b/ nocase
    condition:
        any of them
}

rule SECOPS_PowerShell_Encoded_Command
{
    meta:
        severity = "high"
        description = "PowerShell started with a base64-encoded command"
    strings:
        $enc = /powershell(\.exe)?["']?\s[^\r\n]{0,200}\s[-\/]e(c|n|nc|nco|ncod|ncode|ncoded|ncodedc|ncodedco|ncodedcom|ncodedcomm|ncodedcomma|ncodedcommand)?\s+["']?[A-Za-z0-9+\/]{24,}/ nocase
    condition:
        $enc
}

/*
 * Engine hint, not a finding: words of PowerShell execution, download and obfuscation,
 * in ASCII or UTF-16LE. Objects it matches get the engine's normalising cradle check
 * and -EncodedCommand decoding (secops/scanning/powershell.py), near its matches.
 */
rule SECOPS_Hint_PowerShell
{
    meta:
        severity = "info"
        description = "engine hint: PowerShell words to normalise and decode"
        hint = "powershell"
    strings:
        $w1 = "iex" nocase ascii wide
        $w2 = "invoke-" nocase ascii wide
        $w3 = "download" nocase ascii wide
        $w4 = "webclient" nocase ascii wide
        $w5 = "scriptblock" nocase ascii wide
        $w6 = "iwr " nocase ascii wide
        $w7 = "irm " nocase ascii wide
        $w8 = "-join" nocase ascii wide
        $w9 = "shellid[" nocase ascii wide
        $w10 = "pshome[" nocase ascii wide
        $w11 = "comspec[" nocase ascii wide
        $w12 = "mdr*" nocase ascii wide
        $w13 = "curl " nocase ascii wide
        $w14 = "wget " nocase ascii wide
        $o1 = /[A-Za-z]`[A-Za-z]/ ascii wide
        $o2 = /['"] {0,3}\+ {0,3}['"]/ ascii wide
        // -EncodedCommand and its abbreviations (-e, -ec, -en, -enc...), with - or /
        $e1 = "-e " nocase ascii wide
        $e2 = "-ec " nocase ascii wide
        $e3 = "-en" nocase ascii wide
        $e4 = "/e " nocase ascii wide
        $e5 = "/ec " nocase ascii wide
        $e6 = "/en" nocase ascii wide
    condition:
        any of them
}
