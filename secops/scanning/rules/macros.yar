/*
 * Document-macro indicators visible without parsing the container: a VBA project in an
 * OOXML package (its name is stored uncompressed in the zip directory) or in an OLE
 * compound file, and VBA source that auto-executes and shells out. Deeper macro
 * analysis (oletools/olevba) runs in the engine itself.
 */
rule SECOPS_Macro_OOXML_VBA_Project
{
    meta:
        severity = "medium"
        description = "OOXML document containing a VBA macro project (vbaProject.bin)"
    strings:
        $vba = "vbaProject.bin" nocase
    condition:
        uint32(0) == 0x04034b50 and $vba
}

rule SECOPS_Macro_OLE_VBA_Project
{
    meta:
        severity = "medium"
        description = "OLE compound document containing a VBA macro project"
    strings:
        $vba = "_VBA_PROJECT" wide
    condition:
        uint32(0) == 0xe011cfd0 and uint32(4) == 0xe11ab1a1 and $vba
}

rule SECOPS_Macro_VBA_AutoExec_Shell
{
    meta:
        severity = "high"
        description = "VBA source that runs automatically and starts programs or downloads"
    strings:
        $auto = /\b(Sub|Function)\s+(AutoOpen|Auto_Open|AutoExec|AutoClose|Document_Open|Workbook_Open|Document_Close)\b/ nocase
        $c1 = /\bShell\s*[("]/ nocase
        $c2 = "WScript.Shell" nocase
        $c3 = "URLDownloadToFile" nocase
        $c4 = "MSXML2.XMLHTTP" nocase
        $c5 = "powershell" nocase
        $c6 = "Shell.Application" nocase
    condition:
        $auto and any of ($c*)
}
